@problemName x y
@univariate true
@classLabel true a b
@targetLabel false
@data
1,2,3:a

4,5,6 : b
